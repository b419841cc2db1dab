# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Node statistics and their ``/diagnostics`` report.

:class:`NodeStats` is written by the subscription callbacks (executor thread) and the worker
thread and read by the diagnostics timer, so every method takes its lock. Rates and latencies are
computed over a sliding window; counters are totals since start-up.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
import threading

import numpy as np

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from postometro_ros.inference.depth import DEPTH_FALLBACK_REASONS

__all__ = ['DROP_CAUSES', 'DEPTH_DROP_CAUSES', 'TF_SKIP_REASONS', 'DiagnosticsThresholds',
           'NodeStats', 'diagnostics_message']

# Why a frame was not processed. 'busy': a newer frame replaced it while the worker was busy;
# 'pipeline': the model pipeline raised; the others are ImageDecodeError causes.
DROP_CAUSES: tuple[str, ...] = (
    'busy', 'encoding', 'size', 'step', 'data', 'compressed', 'pipeline')
# Why a depth image was not used: ImageDecodeError causes, and 'resolution' (not the size of
# the colour image it was paired with, so not registered to it).
DEPTH_DROP_CAUSES: tuple[str, ...] = ('encoding', 'size', 'step', 'data', 'resolution')
# Why a person got no body frame on /tf (publish_tf): no track id (tracking off), no metric
# placement (TRANSLATION_NONE), joints that define no frame (coincident hips/shoulders, NaN),
# or an image header without frame_id (no parent frame).
TF_SKIP_REASONS: tuple[str, ...] = ('no_id', 'no_translation', 'degenerate', 'no_frame_id')

_WINDOW_S = 5.0        # sliding window for rates
_LATENCY_SAMPLES = 50  # frames kept for latency means


@dataclass(frozen=True)
class DiagnosticsThresholds:
    """When the status leaves OK.

    Attributes:
        latency_warn_ms: WARN when the mean processing latency (decode to publish) exceeds it.
        input_timeout_s: WARN when no image arrived for this long.
    """

    latency_warn_ms: float = 1000.0
    input_timeout_s: float = 5.0


class NodeStats:
    """Thread-safe counters, rates and latencies of the node.

    Args:
        start_time_s: monotonic start time.

    Attributes:
        use_depth: also report the depth counters (the node sets it once its parameters are
            declared, after the counters exist for refused start-up values).
    """

    def __init__(self, start_time_s: float) -> None:
        self._lock = threading.Lock()
        self._start = start_time_s
        self._inputs: collections.deque[float] = collections.deque()
        self._outputs: collections.deque[float] = collections.deque()
        self._latency: dict[str, collections.deque[float]] = {}
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_skipped_disabled = 0
        self.frames_without_camera_info = 0
        self.rejected_parameters = 0
        self.drops = dict.fromkeys(DROP_CAUSES, 0)
        self.last_input_s: float | None = None
        self.last_output_age_ms = float('nan')
        self.last_people = 0
        self.last_error = ''
        self.use_depth = False
        self.depth_received = 0
        self.depth_drops = dict.fromkeys(DEPTH_DROP_CAUSES, 0)
        self.frames_with_depth = 0
        self.frames_without_depth = 0
        self.people_depth_placed = 0
        self.depth_fallbacks = dict.fromkeys(DEPTH_FALLBACK_REASONS, 0)
        self.tf_bodies = 0
        self.tf_skipped = dict.fromkeys(TF_SKIP_REASONS, 0)

    @staticmethod
    def _trim(times: collections.deque[float], now_s: float) -> None:
        while times and times[0] < now_s - _WINDOW_S:
            times.popleft()

    def on_input(self, now_s: float) -> None:
        """An image message arrived."""
        with self._lock:
            self.frames_received += 1
            self.last_input_s = now_s
            self._inputs.append(now_s)
            self._trim(self._inputs, now_s)

    def on_skipped_disabled(self) -> None:
        """A frame was not processed because the node is disabled (not a failure: no drop)."""
        with self._lock:
            self.frames_skipped_disabled += 1

    def on_drop(self, cause: str, error: str = '') -> None:
        """A frame was dropped for ``cause`` (one of :data:`DROP_CAUSES`)."""
        with self._lock:
            self.drops[cause] += 1
            if error:
                self.last_error = error

    def on_depth_input(self) -> None:
        """A depth image arrived."""
        with self._lock:
            self.depth_received += 1

    def on_depth_drop(self, cause: str, error: str = '') -> None:
        """A depth image was not used for ``cause`` (one of :data:`DEPTH_DROP_CAUSES`)."""
        with self._lock:
            self.depth_drops[cause] += 1
            if error:
                self.last_error = error

    def on_depth_frame(self, paired: bool, placed: int = 0,
                       fallbacks: dict[str, int] | None = None) -> None:
        """A colour frame was processed with (``paired``) or without a depth image.

        Args:
            paired: a depth image within ``depth_slop`` was used.
            placed: people placed from depth (TRANSLATION_DEPTH).
            fallbacks: people who kept the focal placement, by reason.
        """
        with self._lock:
            if paired:
                self.frames_with_depth += 1
            else:
                self.frames_without_depth += 1
            self.people_depth_placed += placed
            for reason, count in (fallbacks or {}).items():
                self.depth_fallbacks[reason] = self.depth_fallbacks.get(reason, 0) + count

    def on_tf(self, bodies: int, skipped: dict[str, int]) -> None:
        """Body frames of one frame were broadcast (``bodies``) or skipped, by reason."""
        with self._lock:
            self.tf_bodies += bodies
            for reason, count in skipped.items():
                self.tf_skipped[reason] += count

    def on_rejected_parameter(self, error: str) -> None:
        """A parameter value (start-up override or runtime set) was refused."""
        with self._lock:
            self.rejected_parameters += 1
            self.last_error = error

    def on_processed(self, now_s: float, timings_ms: dict[str, float], people: int,
                     output_age_ms: float, has_camera_info: bool) -> None:
        """A frame went through the pipeline and its outputs were published.

        Args:
            now_s: wall time at the end of publishing, seconds.
            timings_ms: per-stage latency in milliseconds (including ``total``).
            people: people in the frame.
            output_age_ms: publish time minus the image stamp, milliseconds.
            has_camera_info: whether intrinsics were available for placement.
        """
        with self._lock:
            self.frames_processed += 1
            if not has_camera_info:
                self.frames_without_camera_info += 1
            self._outputs.append(now_s)
            self._trim(self._outputs, now_s)
            for stage, value in timings_ms.items():
                samples = self._latency.setdefault(
                    stage, collections.deque(maxlen=_LATENCY_SAMPLES))
                samples.append(float(value))
            self.last_people = people
            self.last_output_age_ms = output_age_ms

    def _rate(self, times: collections.deque[float], now_s: float) -> float:
        self._trim(times, now_s)
        span = min(_WINDOW_S, max(now_s - self._start, 1e-3))
        return len(times) / span

    def snapshot(self, now_s: float) -> dict[str, float | int | str]:
        """Current values as a flat dict (the keys of the diagnostics report)."""
        with self._lock:
            values: dict[str, float | int | str] = {
                'frames_received': self.frames_received,
                'frames_processed': self.frames_processed,
                'frames_skipped_disabled': self.frames_skipped_disabled,
                'input_rate_hz': round(self._rate(self._inputs, now_s), 3),
                'output_rate_hz': round(self._rate(self._outputs, now_s), 3),
                'dropped_total': sum(self.drops.values()),
            }
            values.update({f'dropped_{cause}': n for cause, n in self.drops.items()})
            values['frames_without_camera_info'] = self.frames_without_camera_info
            values['rejected_parameters'] = self.rejected_parameters
            if self.use_depth:
                values['depth_received'] = self.depth_received
                values.update({f'depth_dropped_{c}': n for c, n in self.depth_drops.items()})
                values['frames_with_depth'] = self.frames_with_depth
                values['frames_without_depth'] = self.frames_without_depth
                values['people_depth_placed'] = self.people_depth_placed
                values.update({f'depth_fallback_{reason}': n
                               for reason, n in self.depth_fallbacks.items()})
            values['tf_bodies_published'] = self.tf_bodies
            values.update({f'tf_skipped_{reason}': n for reason, n in self.tf_skipped.items()})
            for stage, samples in sorted(self._latency.items()):
                values[f'latency_{stage}_ms'] = round(float(np.mean(samples)), 3)
            values['output_age_ms'] = round(self.last_output_age_ms, 3)
            values['people'] = self.last_people
            values['uptime_s'] = round(now_s - self._start, 3)
            values['seconds_since_input'] = (
                round(now_s - self.last_input_s, 3) if self.last_input_s is not None else -1.0)
            values['last_error'] = self.last_error
            return values


def _problems(values: dict[str, float | int | str],
              thresholds: DiagnosticsThresholds) -> list[str]:
    """Reasons for WARN while enabled: no or stale input, mean latency over budget."""
    problems = []
    since_input = float(values['seconds_since_input'])
    if since_input < 0.0:
        problems.append('no image received yet')
    elif since_input > thresholds.input_timeout_s:
        problems.append(f'no image for {since_input:.1f} s')
    waited = since_input if since_input >= 0.0 else float(values['uptime_s'])
    publishers = int(values.get('image_publishers', 0))
    if publishers and waited > thresholds.input_timeout_s:
        # Matched yet silent: the classic cause is a frame larger than the writer's shared-memory
        # segment (Fast DDS: 512 KiB by default), dropped whole on a best-effort link.
        problems.append(f'{publishers} image publisher(s) matched: if they publish, give their '
                        f'process the Fast DDS profile of `python -m postometro_ros.ros.dds`')
    latency = values.get('latency_total_ms')
    if latency is not None and float(latency) > thresholds.latency_warn_ms:
        problems.append(f'latency {float(latency):.0f} ms > {thresholds.latency_warn_ms:.0f} ms')
    return problems


def diagnostics_message(values: dict[str, float | int | str], *, name: str, hardware_id: str,
                        extra: dict[str, str], thresholds: DiagnosticsThresholds,
                        stamp: Time, enabled: bool = True) -> DiagnosticArray:
    """Build the ``DiagnosticArray`` for one report.

    Args:
        values: :meth:`NodeStats.snapshot` output.
        name: status name, e.g. ``'postometro: pipeline'``.
        hardware_id: device the model runs on.
        extra: constant key/values (model, device, input topic, ...).
        thresholds: WARN limits.
        stamp: report time.
        enabled: the node's ``enabled`` switch. Disabled is OK with the message
            ``disabled (N frames skipped)``: idle on purpose, so monitoring can tell it from a
            stalled input, and no input or latency warning applies.

    Returns:
        One status: OK, or WARN with the reasons joined in ``message``.
    """
    if enabled:
        problems = _problems(values, thresholds)
        message = '; '.join(problems) if problems else 'running'
    else:
        problems = []
        message = f'disabled ({values["frames_skipped_disabled"]} frames skipped)'
    status = DiagnosticStatus(
        level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
        name=name, hardware_id=hardware_id, message=message)
    pairs = ([('enabled', str(enabled).lower())] + list(extra.items())
             + [(k, str(v)) for k, v in values.items()])
    status.values = [KeyValue(key=k, value=v) for k, v in pairs]
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])

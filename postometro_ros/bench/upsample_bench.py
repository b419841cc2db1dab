# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Fixed intermediate->fine mesh upsampling: ours vs index gather, sparse CSR, dense matmul.

SMPL-sized matrix (6890 x 1723, 3 non-zeros per row, random columns), batches 1/8/32, CPU.

    python -m postometro_ros.bench.upsample_bench [--threads 1] [--reps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from postometro_ros.model.postometro import FixedUpsample


def _matrix(v_out: int = 6890, v_in: int = 1723, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(v_in, 3, replace=False) for _ in range(v_out)]).ravel()
    rows = np.repeat(np.arange(v_out), 3)
    return sp.csr_matrix((np.full(3 * v_out, 1 / 3, np.float32), (rows, cols)),
                         shape=(v_out, v_in))


def _median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--reps', type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    m = _matrix()
    gather = FixedUpsample(m)
    dense = torch.from_numpy(m.toarray())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                                   # 'beta' notice
        csr = dense.to_sparse_csr()
    print(f'threads={args.threads}  median ms per call  (matrix {m.shape}, nnz {m.nnz})')
    print('batch   ours   index_gather  sparse_csr   dense')
    with torch.inference_mode():
        for b in (1, 8, 32):
            x = torch.randn(b, m.shape[1], 3)

            def sparse_fn(x=x, b=b):
                flat = x.transpose(0, 1).reshape(m.shape[1], 3 * b)      # (V_in, B*3)
                return (csr @ flat).view(m.shape[0], b, 3).transpose(0, 1)

            ref = dense @ x
            assert torch.allclose(gather(x), ref, atol=1e-5)
            assert torch.allclose(sparse_fn(), ref, atol=1e-5)

            def index_fn(x=x):
                return (x[:, gather.index] * gather.weight[None, :, :, None]).sum(2)

            assert torch.allclose(index_fn(), ref, atol=1e-5)
            row = [_median_ms(lambda: gather(x), args.reps), _median_ms(index_fn, args.reps),
                   _median_ms(sparse_fn, args.reps), _median_ms(lambda: dense @ x, args.reps)]
            print(f'{b:5d}  ' + '  '.join(f'{t:9.3f}' for t in row))


if __name__ == '__main__':
    main()

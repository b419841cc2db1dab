# Included by CMakeLists.txt and .ci/tf2_msgs/CMakeLists.txt after their find_package() calls
# for the message packages (ENVIRONMENT.md section 2, "Fix B"). The PyPI ROS 2 wheels export
# *__rosidl_generator_py targets whose include directories name the wheel build machine's
# /opt/python/..., which does not exist here and makes the generate step fail ("includes
# non-existent path"). Keep the existing directories and add this interpreter's Python and NumPy
# headers. Installed files stay untouched. No-op on a normal ROS 2 installation, where all paths
# exist. Runs in the including directory's scope (Python3_* stay visible there).
find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
get_property(_wheel_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_t IN LISTS _wheel_imported)
  if(_t MATCHES "__rosidl_generator_py$")
    get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc)
      set(_keep "")
      foreach(_d IN LISTS _inc)
        if(EXISTS "${_d}")
          list(APPEND _keep "${_d}")
        endif()
      endforeach()
      list(APPEND _keep ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
      list(REMOVE_DUPLICATES _keep)
      set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_keep}")
    endif()
  endif()
endforeach()

# check_isa_objects.cmake: fails the build when an ISA-compiled object could run outside its ISA.
# cmake -DNM=<nm> -DOBJDUMP=<objdump> -DISA=<isa> -DOBJECTS=<a|b|...> -P check_isa_objects.cmake
#
# Every global symbol an ISA object defines must be in namespace fastrnn::<isa>: a weak symbol
# outside it (a std::vector member, say) may be the copy the linker keeps for the whole module,
# and baseline code would then run this ISA's instructions on a CPU without them. Nor may an ISA
# object have static initializers: they run at import, before any CPU check.
string(LENGTH "${ISA}" isa_len)
set(allowed "^_Z(GV|TH|TW)?Z?N[rVK]*[RO]?7fastrnn${isa_len}${ISA}")  # N[cv][ref]: const members
string(REPLACE "|" ";" objects "${OBJECTS}")
foreach(obj IN LISTS objects)
  execute_process(COMMAND "${NM}" --defined-only "${obj}" OUTPUT_VARIABLE syms
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check_isa_objects: ${NM} failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${syms}")
  set(bad "")
  foreach(line IN LISTS lines)
    # "<address> <type> <name>": global types are upper case (and u for unique globals)
    if(line MATCHES "^[0-9a-fA-F]* ([A-Zu]) (.+)$")
      set(name "${CMAKE_MATCH_2}")
      if(NOT name MATCHES "${allowed}" AND NOT name STREQUAL "DW.ref.__gxx_personality_v0")
        list(APPEND bad "${name}")
      endif()
    endif()
  endforeach()
  if(bad)
    list(JOIN bad "\n  " bad_text)
    message(FATAL_ERROR "check_isa_objects: ${obj} (ISA ${ISA}) defines symbols outside "
            "fastrnn::${ISA}; keep standard containers and other shared templates out of "
            "ISA-compiled sources (csrc/cpu/isa/gemm.h: Buffer):\n  ${bad_text}")
  endif()
  execute_process(COMMAND "${OBJDUMP}" -h "${obj}" OUTPUT_VARIABLE sections)
  if(sections MATCHES "\\.init_array|\\.ctors")
    message(FATAL_ERROR "check_isa_objects: ${obj} (ISA ${ISA}) has static initializers; "
            "they would run at import, before the CPU is checked")
  endif()
endforeach()

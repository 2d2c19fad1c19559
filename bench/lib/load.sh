# Sourced by the benchmarks that print a verdict: the machine's load average around the
# measurement, and no verdict when it moved by more than 1 meanwhile (a ratio measured while
# another job started or stopped says more about that job than about what is measured).

# The 1-minute load average.
load_now() { cut -d' ' -f1 /proc/loadavg; }

# Call before the measurement: remembers and prints the load.
load_start() {
  LOAD_BEFORE=$(load_now)
  echo "bench: load average before: $LOAD_BEFORE"
}

# Call after it: prints the load, and returns 1 (with a line saying why) when it moved by more
# than 1 since load_start, so that the caller prints its ratios without a verdict.
load_steady() {
  LOAD_AFTER=$(load_now)
  echo "load average: $LOAD_BEFORE before, $LOAD_AFTER after"
  if awk -v a="$LOAD_BEFORE" -v b="$LOAD_AFTER" 'BEGIN { d = b - a; exit !(d > 1 || d < -1) }'; then
    echo "NO VERDICT: the load moved by more than 1 during the run; run again on a steadier machine"
    return 1
  fi
}

# "met" or "NOT met": whether `value op limit` holds (op: <= or >=).
verdict() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == "<=") ? v <= l : v >= l; print ok ? "met" : "NOT met" }'
}

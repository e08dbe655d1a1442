#!/bin/bash
# BenchmarkSendToMissed of two trees side by side, alternating which runs first, N pairs
# (docs/benchmarks.md, "Flash calls before and after the channels"):
#   scripts/sidebyside-bench.sh OLD_TREE NEW_TREE [N]
set -eu
oldtree=$1 newtree=$2 N=${3:-6}
out=$(mktemp -d)
(cd "$oldtree" && go test -c -o "$out/old.test" ./cmd/flashotp)
(cd "$newtree" && go test -c -o "$out/new.test" ./cmd/flashotp)
for i in $(seq 1 $N); do
  order="old new"; [ $((i % 2)) = 0 ] && order="new old"
  for v in $order; do
    tree=$oldtree; [ $v = new ] && tree=$newtree
    echo "$i $v $(cd "$tree/cmd/flashotp" && "$out/$v.test" -test.run '^$' -test.bench 'BenchmarkSendToMissed$' -test.benchtime 4000x -test.benchmem 2>&1 | grep ^Benchmark)"
  done
done
rm -rf "$out"

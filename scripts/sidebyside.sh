#!/bin/bash
# Whole-path throughput of two builds side by side (docs/benchmarks.md, "Refactor side by side"):
#   scripts/sidebyside.sh OLD_BINARY NEW_BINARY OLD_TREE NEW_TREE
# Alternates the two (the order flips every run), 5 runs each: flashotp bench part a (the SIPp pair, the
# reference) and part c (wrk POSTing /otp/send to the engine as its own process -> SIPp callee, for 15 s:
# "sustained/s" is the capacity); then BenchmarkSendToMissed from each tree, 5 runs each.
set -u
old=$1 new=$2 oldtree=$3 newtree=$4
out=$(mktemp -d)
for i in 1 2 3 4 5; do
  order="old new"; [ $((i % 2)) = 0 ] && order="new old"
  for v in $order; do
    bin=$old; [ $v = new ] && bin=$new
    echo "=== run $i $v $(date +%T)"
    (cd "$out" && timeout 300 "$bin" bench --only ac --repeat 1 --rates 8000,10000,12000 --step 3s --duration 15s) > "$out/$i-$v.txt" 2>&1
    grep -E '^(a|c) |^flashotp:' "$out/$i-$v.txt"
  done
done
for v in old new; do
  tree=$oldtree; [ $v = new ] && tree=$newtree
  (cd "$tree" && go test -c -o "$out/$v.test" ./cmd/flashotp)
done
for i in 1 2 3 4 5; do
  for v in old new; do
    tree=$oldtree; [ $v = new ] && tree=$newtree
    echo "$v $(cd "$tree/cmd/flashotp" && "$out/$v.test" -test.run '^$' -test.bench 'BenchmarkSendToMissed$' -test.benchtime 4000x -test.benchmem 2>&1 | grep ^Benchmark)"
  done
done
rm -rf "$out"

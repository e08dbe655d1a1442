#!/bin/bash
# Inbound calls per second: the engine (bin/flashotp serve), Kamailio routing DIDs to it (testdata/kamailio/
# proxy.cfg) and SIPp as the users' phones (testdata/sipp/inbound_call.xml), all on loopback. Part 1: every
# call from a number with no pending verification (rejected, no_match). Part 2: N verifications sent first
# (channel inbound), then each recipient calls its dial_number (rejected, matched and approved).
# Usage: scripts/bench-inbound.sh [rate] [calls]   (defaults 500 calls/s, 5000 calls); needs kamailio, sipp,
# curl and a built bin/flashotp. It prints SIPp's successful and failed calls and the elapsed time, and the
# engine's counts of each result.
set -euo pipefail
rate=${1:-500}
calls=${2:-5000}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'kill $(cat $dir/pids) 2>/dev/null || true; sleep 0.5; cat $dir/engine.log | head -5 >&2; rm -rf $dir' EXIT
touch $dir/pids
free() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sip=$(free); proxy=$(free)
cat > $dir/flashotp.yaml <<YAML
http: {listen: "127.0.0.1:0", drain_delay: 0s}
sip: {listen: "127.0.0.1:$sip"}
store: {path: "$dir/flashotp.db"}
trunks: [{name: carrier, address: "127.0.0.1:$proxy", inbound: true}]
pool: [{name: demo, numbers: ["+44207946XXXX"]}, {name: dids, numbers: ["+4420794611XX"]}]
apps:
  - id: demo
    api_key: demo
    api_secret: demo-secret
    channels: [flashcall, inbound]
    inbound_pool: dids
    ttl: 15m
    rate_limits: {recipient: {limit: 0}, app: {limit: 0}, client: {limit: 0}, prefix: {limit: 0}, failed_verifications: {limit: 0}, inbound: {limit: 0}}
phone: {enabled: false}
YAML
"$root/bin/flashotp" serve --config $dir/flashotp.yaml > $dir/engine.log 2>&1 &
echo $! >> $dir/pids
for _ in $(seq 50); do grep -q 'flashotp serving' $dir/engine.log && break; sleep 0.1; done
api=$(grep -o 'http=[^ ]*' $dir/engine.log | head -1 | cut -d= -f2)
sed -e "s/LISTEN/127.0.0.1:$proxy/" -e "s/CALLEE/127.0.0.1:$sip/" -e 's/children=2/children=4/' "$root/testdata/kamailio/proxy.cfg" > $dir/kamailio.cfg
kamailio -f $dir/kamailio.cfg -DD -E -m 256 -M 16 -P $dir/kamailio.pid -Y $dir 2> $dir/kamailio.log &
echo $! >> $dir/pids
sleep 1
# The scenario with its caller and called numbers from a CSV file (one call a line).
sed -e 's/\[caller\]/[field0]/g' -e 's/\[called\]/[field1]/g' "$root/testdata/sipp/inbound_call.xml" > $dir/inbound_csv.xml
phones() { # $1: csv file; SIPp at $rate calls/s, $calls calls
  local t0=$(date +%s.%N)
  (cd $dir && sipp -sf inbound_csv.xml -inf $1 -r $rate -m $calls -l 2000 -nostdin -t u1 -i 127.0.0.1 \
    -timeout 120s -trace_stat -stf stat.csv -bg 127.0.0.1:$proxy > /dev/null 2>&1 || true)
  # -bg: wait for SIPp to finish
  while pgrep -f "inf $1" > /dev/null; do sleep 0.2; done
  local t1=$(date +%s.%N)
  local ok=$(tail -1 $dir/stat.csv | awk -F';' '{print $16}') fail=$(tail -1 $dir/stat.csv | awk -F';' '{print $18}')
  echo "  SIPp: $ok calls rejected as the scenario wants, $fail failed, $(python3 -c "print(round($t1-$t0,1))") s"
  rm -f $dir/stat.csv
}
metric() { curl -s "http://$api/metrics" | grep "^flashotp_inbound_calls_total" || true; }
echo "part 1: $calls calls at $rate/s from numbers with no verification (no_match)"
{ echo SEQUENTIAL; for i in $(seq $calls); do printf '+1415%07d;+442079461100\n' $((3000000+i)); done; } > $dir/nomatch.csv
phones nomatch.csv
metric
echo "part 2: $calls verifications sent, then each recipient calls its dial_number at $rate/s (matched)"
python3 - "$api" $calls > $dir/match.csv <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
api, n = sys.argv[1], int(sys.argv[2])
def send(i):
    to = "+1415%07d" % (4000000 + i)
    req = urllib.request.Request("http://%s/otp/send" % api, method="POST",
        data=json.dumps({"appid": "demo", "recipient": to, "channel": "inbound"}).encode(),
        headers={"X-API-Key": "demo", "X-API-Secret": "demo-secret", "Content-Type": "application/json"})
    v = json.load(urllib.request.urlopen(req))
    return v["recipient"] + ";" + v["dial_number"]
with ThreadPoolExecutor(8) as pool:
    lines = list(pool.map(send, range(n)))
print("SEQUENTIAL")
print("\n".join(lines))
PY
phones match.csv
metric

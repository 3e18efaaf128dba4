#!/usr/bin/env bash
# End to end at scale (issue 4): a generated tenant of N sign-ins in Parquet, given 30
# policies, replayed by `ca-replay run` under `/usr/bin/time -v`.
#
#   benches/e2e.sh [SIGNINS] [-- extra run arguments]     e.g. benches/e2e.sh 10000000
#
# The tenant (`generate --users 20000 --days 7 --signins N --format parquet`) is kept under
# $E2E_DIR (default target/e2e) and made once per size. Its 30 policies: the 11 Conditional
# Access policies the generator writes, 16 report-only copies of them (X00-X15, ids derived
# from their names), and the 3 legacy Identity Protection policies. The report folder is
# removed after the run (at 10M sign-ins, details.parquet alone is about 0.9 GB).
set -euo pipefail
n=${1:-10000000}
shift || true
[ "${1:-}" = "--" ] && shift
dir=${E2E_DIR:-target/e2e}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
bin=$target/release/ca-replay
tenant=$dir/tenant-$n
if [ ! -f "$tenant/.complete" ]; then
  rm -rf "$tenant"
  "$bin" generate --users 20000 --days 7 --signins "$n" --format parquet --out "$tenant"
  python3 - "$tenant/policies" <<'PY'
import json, pathlib, sys, uuid
folder = pathlib.Path(sys.argv[1])
originals = sorted(p for p in folder.glob("*.json") if p.name.startswith("CA"))
for i in range(16):
    source = originals[i % len(originals)]
    policy = json.loads(source.read_text(encoding="utf-8-sig"))
    name = f"X{i:02}: copy of {policy['displayName']}"
    policy.update(displayName=name, id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                  state="enabledForReportingButNotEnforced")
    (folder / f"X{i:02}.json").write_text(json.dumps(policy, indent=2), encoding="utf-8")
PY
  touch "$tenant/.complete"
fi
out=$dir/report-$n
rm -rf "$out"
echo "ca-replay $(git rev-parse --short HEAD 2>/dev/null || echo '?') run over $n sign-ins; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/time -v "$bin" run --tenant "$tenant" --out "$out" --quiet "$@" 2>&1 |
  grep -E "^(note|replayed)|Elapsed|Maximum resident|User time|System time|Percent of CPU"
du -sh "$out"/* >&2
rm -rf "$out"

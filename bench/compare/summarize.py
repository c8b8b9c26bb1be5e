"""Medians per case of spindle's figures in an interleave.sh run: the
earlier build beside the new one, and their ratio (> 1: the new one is
faster, whatever the unit's direction)."""
import json,sys,statistics,collections
rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
v=collections.defaultdict(list); hib={}; unit={}
for r in rows:
    if not r['impl'].startswith('spindle'): continue
    k=(r['suite'],r['case'],r['impl']); v[(k,r['who'])].append(r['value']); hib[k]=r['higher_is_better']; unit[k]=r['unit']
keys=sorted({k for (k,w) in v})
print("| suite | case | impl | unit | earlier median | new median | new / earlier (>1 better) | rounds |")
print("|---|---|---|---|---|---|---|---|")
worst=[]
for k in keys:
    b=v.get((k,'base')); n=v.get((k,'new'))
    if not b or not n: continue
    mb=statistics.median(b); mn=statistics.median(n)
    ratio = mn/mb if hib[k] else mb/mn
    worst.append((ratio,k))
    print(f"| {k[0]} | {k[1]} | {k[2]} | {unit[k]} | {mb:.4g} | {mn:.4g} | {ratio:.2f} | {len(b)}/{len(n)} |")
worst.sort()
print("\nlowest:", [(round(r,2),k) for r,k in worst[:6]], file=sys.stderr)

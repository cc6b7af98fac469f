"""The frames refused by dut0's ring (kfree_skb in veth_xmit, refusals-trace.sh)
grouped by the gap between two of dut0's polls they fall in: per gap its
length, the frames, the time the DUT core's 250-us heartbeat says it was
missing (intervals beyond one period), the longest silence of every event on
CPU 1, and the gap less the missing time ("own").
  python3 refusals.py TRACE
"""
import re,sys,bisect
ev=[]
for l in open(sys.argv[1]):
    m=re.match(r'\s*(.+?)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\S+):\s*(.*)',l)
    if m: ev.append((float(m.group(3)),int(m.group(2)),m.group(1).strip(),m.group(4).rstrip(':'),m.group(5)))
polls=[e[0] for e in ev if e[3]=='napi_poll' and 'device dut0' in e[4]]
ref=[e[0] for e in ev if e[3]=='kfree_skb']
beats=[e[0] for e in ev if e[3]=='hrtimer_expire_entry' and 'perf_swevent_hrtimer' in e[4] and e[1]==1]
timers=[e[0] for e in ev if e[3]=='hrtimer_expire_entry' and e[1]==1]
cpu1=[e[0] for e in ev if e[1]==1]
print('polls',len(polls),'refused',len(ref),'beats',len(beats),'timers',len(timers))
P=0.00025
gaps={}
for t in ref:
    i=bisect.bisect_left(polls,t)
    if i==0 or i>=len(polls): continue
    gaps.setdefault(i,0); gaps[i]+=1
rows=[]
for i,n in sorted(gaps.items()):
    a,b=polls[i-1],polls[i]
    # beats from the one before a to the one after b
    j=max(bisect.bisect_left(beats,a)-1,0); k=min(bisect.bisect_right(beats,b)+1,len(beats))
    bs=beats[j:k]
    miss=sum(max(0,min(y,b)-max(x,a)-P) for x,y in zip(bs,bs[1:]) if y>a and x<b)
    j=bisect.bisect_left(cpu1,a); k=bisect.bisect_right(cpu1,b)
    es=[a]+cpu1[j:k]+[b]
    sil=max(y-x for x,y in zip(es,es[1:]))
    rows.append((b-a,n,miss,sil,a))
for g,n,m,s,a in rows:
    print('%.6f gap %6.0f us refused %5d  beat-missing %6.0f us  longest cpu1 silence %6.0f us  own %6.0f us'%(a,g*1e6,n,m*1e6,s*1e6,(g-m)*1e6))

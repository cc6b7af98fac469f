"""Replays the watch's filing (bench/bpf/napi_gap.c as of this commit) on a trace of
refusals-trace.sh: each poll of dut0 files the frames refused since the
last under the gap it ends; they are the testbed's when the heartbeat was
missing 250 us and a quarter of the gap in it ("away"), or when they fall
in the backlog after such a gap (until 512 frames polled, or a poll below
budget); else the DUT's. Prints the frames not filed as away, and totals.
With "old", the rule before it (990c77c): a gap of 1 ms or more with 0.5 ms
and a quarter of it missing, no backlog.
  python3 backlog-replay.py TRACE [old]
"""
import re,sys
OLD=len(sys.argv)>2 and sys.argv[2]=='old'
P=250e-6; AWAY=500e-6 if OLD else 250e-6; STALL=1e-3; BACK=0 if OLD else 512
ev=[]
for l in open(sys.argv[1]):
    m=re.match(r'\s*(.+?)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\S+):\s*(.*)',l)
    if not m: continue
    t=float(m.group(3)); cpu=int(m.group(2)); name=m.group(4).rstrip(':'); rest=m.group(5)
    if name=='hrtimer_expire_entry' and cpu==1 and 'perf_swevent_hrtimer' in rest: ev.append((t,'beat',0))
    elif name=='napi_poll' and 'device dut0' in rest:
        w=int(re.search(r'work (\d+) budget (\d+)',rest).group(1)); ev.append((t,'poll',w))
    elif name=='kfree_skb': ev.append((t,'ref',0))
ev.sort()
beat=0; missing=0; mfiled=0; last=0; refused=0; rfiled=0; back=0
tot={'away':0,'backlog':0,'dut':0}
for t,k,w in ev:
    if k=='beat':
        if beat and t-beat>P: missing+=t-beat-P
        beat=t
    elif k=='ref': refused+=1
    else:
        gap=t-last if last else 0
        fresh=refused-rfiled; rfiled=refused
        silent=t-beat if beat else 0
        mis=missing+(silent-P if silent>P else 0)
        mh=max(0,mis-mfiled); mfiled=max(mfiled,mis)
        stall=last and gap>=STALL
        away=last and mh>=AWAY and mh*4>=gap and (gap>=STALL or not OLD)
        if fresh:
            kind='away' if away else ('backlog' if back and not stall else 'dut')
            tot[kind]+=fresh
            if kind!='away': print('%.6f gap %5.0f missing %5.0f refused %4d %s back %d'%(t,gap*1e6,mh*1e6,fresh,kind,back))
        if away: back=BACK
        elif stall or w<64 or w>=back: back=0
        else: back-=w
        last=t
print(tot)

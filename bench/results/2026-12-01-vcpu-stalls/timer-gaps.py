"""The stalls (gaps of 1 ms or more between two of dut0's NAPI polls) in an
ftrace of the DUT's core (timer-gaps-trace.sh), with the longest gap
between two hrtimer expiries in each; with a second argument, the events
of every stall that has no timer gap of 750 us.
  python3 timer-gaps.py TRACE [1]
"""
import re,sys
ev=[]
for l in open(sys.argv[1]):
    m=re.match(r'\s*(.+?)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\S+):\s*(.*)',l)
    if m: ev.append((float(m.group(3)),m.group(1).strip(),m.group(4).rstrip(':'),m.group(5)))
polls=[i for i,e in enumerate(ev) if e[2]=='napi_poll' and 'device dut0' in e[3]]
print('events',len(ev),'polls',len(polls), ev[0][0], ev[-1][0])
show=int(sys.argv[2]) if len(sys.argv)>2 else 0
for a,b in zip(polls,polls[1:]):
    g=ev[b][0]-ev[a][0]
    if g>=0.001 and g<0.1:
        j=a
        while j>0 and ev[j][2]!='hrtimer_expire_entry': j-=1
        t=[ev[j][0]]+[e[0] for e in ev[a:b+1] if e[2]=='hrtimer_expire_entry']
        mg=max(y-x for x,y in zip(t,t[1:])) if len(t)>1 else 0
        print('%.6f gap %5.0f us  max timer gap %5.0f us'%(ev[a][0], g*1e6, mg*1e6))
        if mg<0.00075 and show:
            prev=ev[a][0]
            for e in ev[a:b+1]:
                print('  +%7.0f (d %6.0f) %-22s %-20s %s'%((e[0]-ev[a][0])*1e6,(e[0]-prev)*1e6,e[1][:22],e[2],e[3][:110]))
                prev=e[0]

"""What the SSH driver runs on a board: small shell and Python snippets (Python >= 3.6,
standard library only)."""

from __future__ import annotations

import shlex

OOM_MARKER = "edgebench: killed by the kernel OOM killer"
# Reads the kernel's OOM-kill counter (Linux >= 4.13); empty where it does not exist.
OOM_COUNT = "sed -n 's/^oom_kill //p' /proc/vmstat 2>/dev/null"
PY_SHA256 = (
    "import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],'rb');"
    "[h.update(b) for b in iter(lambda:f.read(1<<20),b'')];print(h.hexdigest())"
)
PY_KILL_SESSION = """\
import os,sys
s=int(sys.argv[1])
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            if os.getsid(int(d))==s:
                os.kill(int(d),9)
        except OSError:
            pass
"""
PY_LOCK = """\
import fcntl,os,sys,time
p,t,owner=sys.argv[1],float(sys.argv[2]),sys.argv[3]
os.makedirs(os.path.dirname(p),exist_ok=True)
f=open(p,'a+')
d=time.monotonic()+t
while True:
    try:
        fcntl.flock(f,fcntl.LOCK_EX|fcntl.LOCK_NB)
        break
    except OSError:
        if time.monotonic()>=d:
            f.seek(0)
            sys.stdout.write('busy '+f.read().strip()+'\\n')
            sys.stdout.flush()
            sys.exit(75)
        time.sleep(0.2)
f.seek(0)
f.truncate()
f.write(owner)
f.flush()
sys.stdout.write('locked\\n')
sys.stdout.flush()
sys.stdin.read()
"""


def hash_cmd(python: str, path: str) -> str:
    """A shell command printing the sha256 of ``path``: sha256sum, else the board's Python."""
    q = shlex.quote(path)
    return f"{{ sha256sum -- {q} 2>/dev/null || {shlex.quote(python)} -c {shlex.quote(PY_SHA256)} {q}; }} | cut -c1-64"


# Kills the edgebench agents running from a workdir (argv[1] is <workdir>/.../agent.py) other
# than this snippet's own parents, and prints "pid args" for each: Python 3.6, stdlib only.
PY_KILL_AGENTS = """\
import os,sys
wd=sys.argv[1].rstrip('/')+'/'
me={os.getpid(),os.getppid()}
for d in os.listdir('/proc'):
    if not d.isdigit() or int(d) in me:
        continue
    try:
        with open('/proc/'+d+'/cmdline','rb') as f:
            args=f.read().decode('utf-8','replace').split('\\0')
    except OSError:
        continue
    if any(a.startswith(wd) and a.endswith('/agent.py') for a in args):
        try:
            os.kill(int(d),9)
            print(d+' '+' '.join(a for a in args if a)[:200])
        except OSError:
            pass
"""

# Runs the agent (argv[1]) only if its sha256 is argv[2], else one line on stderr and exit 1.
# The bytes checked are the bytes run (compiled and run as __main__ in this process, so a
# file swapped between the check and the start cannot run); one line of Python 3.6, so the
# command stays readable in an error message.
AGENT_CHANGED = "edgebench: agent changed: "
PY_VERIFY_AGENT = (
    'import hashlib,sys,types;a,h=sys.argv[1:3];b=open(a,"rb").read();g=hashlib.sha256(b).hexdigest();'
    f'g==h or sys.exit("{AGENT_CHANGED}%s has sha256 %s" % (a,g));'
    'm=types.ModuleType("__main__");m.__file__=a;sys.modules["__main__"]=m;sys.argv=[a]+sys.argv[3:];'
    'c=compile(b,a,"exec");del b;exec(c,m.__dict__)'
)


def agent_argv(python: str, agent: str, sha256: str, *args: str) -> list[str]:
    """The command of one agent process: ``agent`` is checked against ``sha256`` on the board first."""
    return [python, "-c", PY_VERIFY_AGENT, agent, sha256, *args]

"""A real labgrid lab on loopback: a ``labgrid-coordinator``, a ``labgrid-exporter`` exporting the
``NetworkService`` of each farm board (the real sshd boards of ``tests/integration/conftest.py``),
and places created and tagged with labgrid's own client API.

``lab`` (session scope) is a `Lab`:

- places ``lab-1`` .. ``lab-3`` (tag ``board=farm``) reach ``farm-1`` .. ``farm-3``; ``lab-4``
  (``board=farm``) reaches ``farm-1`` again through a second resource (a fourth board, its own
  workdir): pool ``farm`` has 4 places;
- ``lab-solo`` (``board=solo``) reaches ``farm-3``: pool ``solo`` has one place, for contention;
- ``lab-bare`` (``board=bare``) has no resource: pool ``bare``;
- ``lab.pools`` declares them (``[pools.X]`` tables through `parse_pools`), with a key of the lab
  added to every farm board's authorized_keys and a workdir per place.

The coordinator and the exporter run in sessions of their own (a Ctrl-C to the test run does not
reach them), are stopped at the end of the session and on SIGINT/SIGTERM (then the run stops as
on Ctrl-C). Where labgrid is not installed the tests skip loudly; under ``CI=true`` they fail.
``lab_is_clean`` (autouse) checks after every test that no reservation and no acquired place was
left behind, then clears whatever was.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from _servers import free_port, stopped_on_signals
from edgebench.targets.farm import Farm

VENV_BIN = Path(sys.executable).parent
PLACES = {  # place -> (tags, farm board or None, resource group)
    "lab-1": ({"board": "farm"}, "farm-1", "farm-1"),
    "lab-2": ({"board": "farm"}, "farm-2", "farm-2"),
    "lab-3": ({"board": "farm"}, "farm-3", "farm-3"),
    "lab-4": ({"board": "farm"}, "farm-1", "farm-1-second"),
    "lab-solo": ({"board": "solo"}, "farm-3", "farm-3-solo"),
    "lab-bare": ({"board": "bare"}, None, ""),
}


def labgrid_tool(name: str) -> str | None:
    """The labgrid command ``name`` next to this Python (the venv), or on PATH."""
    here = VENV_BIN / name
    return str(here) if here.is_file() else shutil.which(name)


def require_labgrid() -> None:
    """Skip (or, under CI=true, fail) when labgrid is not installed."""
    try:
        import labgrid  # noqa: F401
    except ImportError:
        missing = "the labgrid package"
    else:
        missing = ", ".join(t for t in ("labgrid-coordinator", "labgrid-exporter") if labgrid_tool(t) is None)
    if not missing:
        return
    msg = (
        f"labgrid is NOT INSTALLED ({missing} missing), so the lab integration tests cannot run: "
        "install it with `pip install 'edgebench[lab]'`"
    )
    missing(msg)


@dataclass
class Lab:
    """The running lab: coordinator address, its processes, the inventory that declares the pools."""

    root: Path
    address: str
    farm: Farm
    inventory: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pools(self) -> dict[str, object]:
        """The pools of ``inventory`` (parsed by `edgebench.targets.lab.parse_pools`)."""
        from edgebench.config import load_toml
        from edgebench.targets.lab import parse_pools

        return dict(parse_pools(load_toml(self.inventory)["pools"], self.inventory))

    def stop(self) -> None:
        """Stop the exporter and the coordinator (SIGTERM, then SIGKILL)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def start_process(cmd: list[str], cwd: Path, log: Path, ready: str, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"{cmd[0]} did not start (log {log}):\n{log.read_text(errors='replace')[-2000:]}")


Places = dict[str, tuple[dict[str, str], "str | None", str]]


def exporter_config(farm: Farm, places: Places = PLACES) -> str:
    """The exporter's YAML: one NetworkService per resource group of ``places``."""
    lines = []
    user = getpass.getuser()
    for _place, (_tags, board, group) in places.items():
        if board is None:
            continue
        m = farm.member(board)
        lines += [f"{group}:", "  NetworkService:", f"    address: {m.address}", f"    username: {user}"]
        lines.append(f"    port: {m.port}")
    return "\n".join(lines) + "\n"


def make_places(address: str, places: Places = PLACES) -> None:
    """Create and tag the places with labgrid's own client API (ClientSession's stub, as labgrid-client does)."""
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

    from edgebench.targets.lab import LabClient

    with LabClient(address) as client:
        for place, (tags, board, group) in places.items():
            client._call("AddPlace", pb.AddPlaceRequest(name=place), f"creating {place}")
            client._call("SetPlaceTags", pb.SetPlaceTagsRequest(placename=place, tags=tags), f"tagging {place}")
            if board is not None:
                pattern = f"lab-exporter/{group}/NetworkService"
                req = pb.AddPlaceMatchRequest(placename=place, pattern=pattern)
                client._call("AddPlaceMatch", req, f"matching {place}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the exporter's resources have arrived
            try:
                for place, (_t, board, _g) in places.items():
                    if board is not None:
                        client.endpoint(place)
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("the exporter's NetworkService resources did not reach the coordinator in 20 s")


def write_inventory(root: Path, lab_address: str, farm: Farm, key: Path) -> Path:
    """``root/boards.toml`` declaring the pools farm, solo, bare and nowhere (tags matching no place)."""
    work = root / "work"
    text = ""
    for pool in ("farm", "solo", "bare", "nowhere"):
        tag = "none-such" if pool == "nowhere" else pool
        text += (
            f"[pools.{pool}]\n"
            f'coordinator = "{lab_address}"\n'
            f'tags = {{ board = "{tag}" }}\n'
            f'identity_file = "{key}"\n'
            f'known_hosts = "{farm.known_hosts}"\n'
            f'python = "{farm.python}"\n'
            f'workdir = "{work}/{{place}}"\n\n'
        )
    path = root / "boards.toml"
    path.write_text(text)
    return path


def lab_key(root: Path, farm: Farm) -> Path:
    """One key for every board of the pools (a pool's boards share one), accepted by every farm board."""
    key = root / "id_lab"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (root / "id_lab.pub").read_text()
    for m in farm.members:
        auth = Path(m.dir) / "authorized_keys"
        text = auth.read_text()
        if pub not in text:
            auth.write_text(text.rstrip("\n") + "\n" + pub)
    return key


def lab_stopped_on_signals(lab: Lab) -> contextlib.AbstractContextManager[None]:
    """Stop the lab when the test run gets SIGINT or SIGTERM, then the farm (the handler it replaced), then the run."""
    return stopped_on_signals(lab.stop, f"lab in {lab.root}")


def start_lab(the_lab: Lab, places: Places = PLACES) -> None:
    """Start the coordinator and the exporter of ``the_lab`` (processes recorded in it), create the places."""
    root, address = the_lab.root, the_lab.address
    (root / "exporter.yaml").write_text(exporter_config(the_lab.farm, places))
    coordinator = labgrid_tool("labgrid-coordinator")
    exporter = labgrid_tool("labgrid-exporter")
    assert coordinator is not None and exporter is not None
    the_lab.procs.append(start_process([coordinator, "-l", address], root, root / "coordinator.log", "listening on"))
    cmd = [exporter, "-c", address, "-n", "lab-exporter", "--hostname", "127.0.0.1", str(root / "exporter.yaml")]
    the_lab.procs.append(start_process(cmd, root, root / "exporter.log", "Exporter ready"))
    make_places(address, places)


@pytest.fixture(scope="session")
def lab(farm: Farm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A labgrid coordinator and exporter on loopback with the places above, stopped at the end."""
    require_labgrid()
    root = tmp_path_factory.mktemp("lab")
    the_lab = Lab(root=root, address=f"127.0.0.1:{free_port()}", farm=farm, inventory=root / "boards.toml")
    with lab_stopped_on_signals(the_lab):
        try:
            start_lab(the_lab)
            the_lab.inventory = write_inventory(root, the_lab.address, farm, lab_key(root, farm))
            yield the_lab
        finally:
            the_lab.stop()


def leftovers(address: str) -> tuple[list[str], list[str]]:
    """The reservations (``TOKEN owner state``) and acquired places (``place by holder``) the coordinator holds."""
    from edgebench.targets.lab import LabClient

    with LabClient(address) as client:
        res = [f"{r.token} {r.owner} {r.state}" for r in client.reservations()]
        held = [f"{p.name} by {p.acquired}" for p in client.places() if p.acquired]
    return res, held


@pytest.fixture(autouse=True)
def lab_is_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each lab test: nothing reserved, nothing acquired (then clear it for the next test)."""
    yield
    if "lab" not in request.fixturenames:
        return
    the_lab: Lab = request.getfixturevalue("lab")
    res, held = leftovers(the_lab.address)
    if res or held:
        from edgebench.targets.lab import LabClient

        with LabClient(the_lab.address) as client:
            for p in client.places():
                if p.acquired:
                    client.release(p.name)
            for r in client.reservations():
                client.cancel(r.token)
        pytest.fail(f"left behind: reservations {res}, acquired places {held}")

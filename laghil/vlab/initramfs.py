"""Build the guest initramfs: busybox-static, stage 1 and the boot modules."""

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from ..errors import RackError
from .kernel import GuestKernel

# igb: a port of model igb (SR-IOV PF) is named by MAC in stage 1 like the others
BOOT_MODULES = ("virtio_pci", "virtio_net", "virtio_rng", "9pnet_virtio", "9p", "overlay", "igb")
BUSYBOX = "/bin/busybox"


def _stage1() -> bytes:
    return resources.files("laghil.vlab").joinpath("stage1.sh").read_bytes()


def build_initramfs(kernel: GuestKernel, out_dir: Path) -> Path:
    """Return the path of an initramfs for ``kernel``; rebuilt only when its inputs change."""
    if not os.path.exists(BUSYBOX):
        raise RackError(f"{BUSYBOX} missing: install busybox-static (scripts/setup)")
    chain = []
    for m in BOOT_MODULES:
        for p in kernel.module_chain(m):
            if p not in chain:
                chain.append(p)
    key = hashlib.sha256(_stage1() + kernel.version.encode()
                         + "".join(map(str, chain)).encode()).hexdigest()[:12]
    out = Path(out_dir) / f"initramfs-{kernel.version}-{key}.cpio"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "bin").mkdir()
        shutil.copy2(BUSYBOX, t / "bin" / "busybox")
        (t / "init").write_bytes(_stage1())
        os.chmod(t / "init", 0o755)
        (t / "modules").mkdir()
        for p in chain:
            shutil.copy2(p, t / "modules" / p.name)
        (t / "modules" / "order").write_text("\n".join(p.name for p in chain) + "\n")
        files = subprocess.run(["find", "."], cwd=t, capture_output=True, text=True,
                               check=True).stdout
        part = out.with_suffix(".part")
        with open(part, "wb") as f:
            r = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=t,
                               input=files.encode(), stdout=f, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RackError(f"cpio failed: {r.stderr.decode().strip()}")
        part.rename(out)
    return out

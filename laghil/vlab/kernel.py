"""Debian's kernel for the guests: fetched with apt, unpacked into a cache.

The host kernel has no bonding, team or RDMA; Debian's linux-image-amd64 has them
all as modules. It is never installed on the host: `apt-get download` +
`dpkg-deb -x` into ``<cache>/kernel/<version>/`` and `depmod -b` there.
"""

import glob
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import RackError
from .paths import cache_root

META_PACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class GuestKernel:
    root: Path          # unpacked package root
    version: str        # e.g. 6.1.0-56-amd64

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    def boot_image(self) -> Path:
        """The image to boot: the uncompressed ELF ``vmlinux`` (PVH entry, no BIOS
        real-mode start and no in-guest decompression: seconds saved per guest under
        emulation), extracted once from the bzImage; the bzImage if that fails."""
        elf = self.root / "boot" / f"vmlinux-{self.version}"
        if not elf.exists():
            try:
                _extract_vmlinux(self.vmlinuz, elf)
            except RackError:
                return self.vmlinuz
        return elf

    @property
    def modules_dir(self) -> Path:
        """The folder shared to the guest as /lib/modules."""
        return self.root / "lib" / "modules"

    def module_chain(self, module: str) -> list[Path]:
        """Module files to insmod, in order, for ``module`` and its dependencies."""
        out = _run(["modprobe", "-d", str(self.root), "-S", self.version,
                    "--show-depends", module])
        paths = []
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod":
                p = Path(parts[1])
                if p not in paths:
                    paths.append(p)
        return paths


def _run(cmd, cwd=None):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as e:
        raise RackError(f"{cmd[0]} not found: run scripts/setup first") from e
    if r.returncode != 0:
        raise RackError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


XZ_MAGIC = b"\xfd7zXZ\x00"


def _extract_vmlinux(bzimage: Path, out: Path):
    """Decompress the xz payload of a bzImage into an ELF vmlinux (as the kernel's
    scripts/extract-vmlinux does)."""
    data = bzimage.read_bytes()
    at = data.find(XZ_MAGIC)
    if at < 0:
        raise RackError(f"{bzimage}: no xz payload found")
    r = subprocess.run(["xz", "-dc", "--single-stream"], input=data[at:], capture_output=True)
    if r.returncode != 0 or not r.stdout.startswith(b"\x7fELF"):
        raise RackError(f"{bzimage}: xz payload did not decompress to an ELF image")
    tmp = out.with_suffix(".part")
    tmp.write_bytes(r.stdout)
    tmp.rename(out)


def _kernel_dir() -> Path:
    return cache_root() / "kernel"


def find_kernel() -> GuestKernel | None:
    """The newest unpacked and depmod'ed kernel in the cache, if any."""
    best = None
    for ready in sorted(glob.glob(str(_kernel_dir() / "*" / ".ready"))):
        root = Path(ready).parent
        version = Path(ready).read_text().strip()
        best = GuestKernel(root, version)
    return best


def ensure_kernel(log=print) -> GuestKernel:
    """Return the cached guest kernel, fetching and unpacking it on first use."""
    k = find_kernel()
    if k:
        return k
    deps = _run(["apt-cache", "depends", META_PACKAGE])
    image = next((l.split(":", 1)[1].strip() for l in deps.splitlines()
                  if l.strip().startswith("Depends:") and "linux-image-" in l), None)
    if not image:
        raise RackError(f"apt-cache depends {META_PACKAGE}: no linux-image dependency "
                        "(run apt-get update?)")
    version = image.removeprefix("linux-image-")
    dest = _kernel_dir() / version
    log(f"vlab: fetching {image} into {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        os.chmod(tmp, 0o755)  # apt's _apt user must be able to write here
        _run(["apt-get", "download", "-q", image], cwd=tmp)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if len(debs) != 1:
            raise RackError(f"apt-get download {image}: expected one .deb, got {debs}")
        root = Path(tmp) / "root"
        _run(["dpkg-deb", "-x", debs[0], str(root)])
        _run(["depmod", "-b", str(root), version])
        if dest.exists():
            subprocess.run(["rm", "-rf", str(dest)], check=True)
        root.rename(dest)
    (dest / ".ready").write_text(version + "\n")
    return GuestKernel(dest, version)

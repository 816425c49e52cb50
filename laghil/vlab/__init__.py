"""The embedded virtual rack: QEMU (TCG) guests running Debian's kernel.

Each host and switch of a virtual lab is a guest; each cable is a pair of UDP
socket netdevs on 127.0.0.1; management is SSH via hostfwd on 127.0.0.1; one
QMP socket per guest drives cable pulls. See shared docs/virtual-rack.md.
"""

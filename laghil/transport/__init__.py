"""SSH transport to lab nodes (paramiko)."""

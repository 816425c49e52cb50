"""Checks and building blocks a suite asserts with, usable without pytest;
each check states what must hold, with the numbers in its message.
``switch``: a LAG through a switch; ``ibbond``: IB device bonding."""

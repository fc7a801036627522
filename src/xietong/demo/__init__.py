"""The demo network generator: the Henan first-phase network, or the whole province, its
accounts, and a few demo patients with charts.

It uses the directory, identity, patients and records (and the audit log), so it sits with
the entry points.
"""

from xietong.demo.accounts import ACCOUNTS, DEMO_PASSWORD
from xietong.demo.loader import DemoReport, build_demo, load_demo

__all__ = ["ACCOUNTS", "DEMO_PASSWORD", "DemoReport", "build_demo", "load_demo"]

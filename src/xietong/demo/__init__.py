"""The demo network generator: the Henan first-phase network, or the whole province.

It uses the directory and identity (and the audit log), so it sits with the entry points.
"""

from xietong.demo.accounts import ACCOUNTS, DEMO_PASSWORD
from xietong.demo.loader import DemoReport, build_demo, load_demo

__all__ = ["ACCOUNTS", "DEMO_PASSWORD", "DemoReport", "build_demo", "load_demo"]

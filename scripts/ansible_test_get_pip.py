"""Offline stand-in for ansible-test's get-pip bootstrap.

ansible-test downloads get-pip from a host this machine cannot reach; it uses a cached copy when one exists.
This one bootstraps pip with ensurepip, then lets that pip install what ansible-test asked for from PyPI.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)

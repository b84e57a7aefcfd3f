"""What setup.cfg cannot say: the cffi extension of the C drivers and board model (drivers/build_ffi.py)."""

from setuptools import setup

setup(cffi_modules=["drivers/build_ffi.py:ffibuilder"])

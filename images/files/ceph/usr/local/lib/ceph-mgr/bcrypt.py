"""bcrypt for ceph-mgr's modules (ceph-daemon puts this directory first on the mgr's path).

Debian's bcrypt is a PyO3 extension, and PyO3 refuses to load in a subinterpreter, where
ceph-mgr runs each module: Ceph 18.2's mgr_util imports bcrypt at the top, so without this
stand-in every module fails to load (the autoscaler, the balancer, rbd_support and the status
among them). Only the dashboard hashes passwords with it, and sovstack runs no dashboard: a
call says so instead of hashing.
"""


def _unavailable(*args: object, **kwargs: object) -> None:
    raise RuntimeError("bcrypt is not available to ceph-mgr's modules (sovstack runs no dashboard)")


hashpw = checkpw = gensalt = kdf = _unavailable

"""Schedulers that diffusers does not ship (diffusers ``SchedulerMixin`` + ``ConfigMixin``)."""

from mindgap_core.schedulers.resshift import ResShiftScheduler, ResShiftSchedulerOutput

__all__ = ["ResShiftScheduler", "ResShiftSchedulerOutput"]

"""The vector unit (VPU): integer-only transformer nonlinearities at the array's result rate.

See :mod:`.layouts` for the wire formats, :mod:`.vpu` for the block and ``docs/vpu.md``.
"""

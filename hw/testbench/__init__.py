"""Simulation- and measurement-only gateware: never part of a block's deliverable.

The rule, applied to every block: everything in ``hw/`` outside this package is deliverable RTL
(what ``scoville verilog BLOCK`` writes and ``scoville synth BLOCK`` measures). Gateware that
exists only to exercise or measure a deliverable — traffic generators, checkers, monitors,
simulation tops that wrap a deliverable with a test memory or behavioural device, the Fmax
harness — lives here. It stays synthesizable (FPGA prototypes and hardware benches use it), but
a block's ``rtl`` factory never instantiates anything from this package; its simulation
``factory`` may.
"""

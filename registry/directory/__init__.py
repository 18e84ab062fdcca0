"""Pages over the reference data and the audit trail (units, pairings and programmes, the administrators' log).

They sit above the permission gate, which itself reads units, pairings and users; keeping these views out of
``counties``, ``pairings`` and ``audit`` lets those packages stay below the gate.
"""

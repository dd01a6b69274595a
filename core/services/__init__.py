"""Services: every write of every resource goes through one function here.

Services flush but never commit: the caller (a request, a CLI command) owns the transaction, so
a change, its side effects (default handover, auto-created channels) and its audit event are
committed together or not at all.
"""

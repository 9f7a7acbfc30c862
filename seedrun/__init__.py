"""seedrun: run a data-sync pipeline with make, a log per step and a run record.

This file stays empty of imports: the step runner imports modules of this
package on its hot path, and anything imported here would slow every step.
"""

__version__ = "0.1.0"

import os
import sys

from . import main

code = main()
if "torch.distributed" in sys.modules:
    from ..runtime import leave_process_group

    # A torchrun rank whose work is done and saved ends here, once the others are done too (a
    # rank that succeeded waits; a failed one leaves at once, and torchrun stops the rest):
    # tearing the interpreter down with gloo's threads in the process can abort it (SIGABRT).
    if leave_process_group(wait=not code):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
sys.exit(code)

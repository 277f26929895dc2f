import os
import sys

from . import main

code = main()
if "torch.distributed" in sys.modules:
    from ..runtime import leave_process_group

    if leave_process_group():
        # A torchrun rank whose work is done and saved ends here: tearing the interpreter down
        # with gloo's threads still in the process can abort it (SIGABRT) and fail the job.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
sys.exit(code)

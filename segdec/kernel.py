"""The Jupyter kernel that executes the notebooks, for papermill batches and the companion alike."""

KERNEL = "python3"  # the kernel of the Python that runs the batch (ipykernel is a dependency)
# ipykernel logs to its own stderr, the batch's terminal: a warning about unencrypted local TCP at
# every start and an error when jupyter_client interrupts the idle kernel to shut it down. Only
# its critical messages pass; a notebook's errors come back through the executed cells (the
# summary names them) and whatever the kernel's libraries write to stderr still shows.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]

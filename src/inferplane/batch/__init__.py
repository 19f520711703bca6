"""The Batch API (OpenAI's format): input files validated line by line (``jsonl``), the
batch's lifecycle decisions (``lifecycle``, pure), the output files' lines (``results``), the
endpoints a line may call (``endpoints``, a registry keyed by the line's ``url``), the store
(``store``: files, batches, each line's state with claims and leases) and the runner, a
long-lived part of the gateway that runs the lines at low priority (``runner``)."""

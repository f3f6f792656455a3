"""Input/output: detector frame readers and the Zarr v3 scan store shared by the pipelines."""

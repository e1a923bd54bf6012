"""What tfsal writes: per-image files (JSON, overlays, masks, counterfactuals), the loop that
explains image files with any explainer, drawing and plots, and the DICOM Segmentation,
Secondary Capture and C-STORE of results. Nothing here computes an explanation."""

"""CallBox image layer."""

"""CallBox tools layer."""

"""CallBox tools/bench layer."""

"""CallBox firmware layer."""

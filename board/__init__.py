"""CallBox board layer."""

"""CallBox dsp layer."""

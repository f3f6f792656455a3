"""Hyperspectral photoluminescence: spectra to energy, peak fits with model selection, shift maps, time series."""

"""Residents' requests (点单→下单→接单) and micro-wishes (微心愿), dispatched along the pairing."""

"""mlscope.stack."""

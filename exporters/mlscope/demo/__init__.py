"""mlscope.demo."""

"""grouper: group students' free-text answers so that whole groups are graded at once."""

__version__ = "0.1.0"

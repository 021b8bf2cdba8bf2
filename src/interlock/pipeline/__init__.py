"""The request path every inference request shares: identify, parse, plan, admit, dispatch, encode, settle."""

"""The sandbox's shared machinery: state, errors, paging, routing, faults."""

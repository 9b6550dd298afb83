import doctest

import stream.workload


def test_workload_docstring_examples():
    result = doctest.testmod(stream.workload)
    assert result.attempted > 20 and result.failed == 0

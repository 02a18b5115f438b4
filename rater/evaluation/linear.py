"""A small linear solve for the estimators (PPI++'s weights, the calibration's logistic fit): a few unknowns, no
numpy needed by the rating install."""


def solve(matrix: list[list[float]], vector: list[float]) -> list[float] | None:
    """matrix^-1 vector by Gaussian elimination with pivoting; None when the matrix is (nearly) singular."""
    size = len(vector)
    rows = [list(matrix[i]) + [vector[i]] for i in range(size)]
    for col_ in range(size):
        pivot = max(range(col_, size), key=lambda r: abs(rows[r][col_]))
        if abs(rows[pivot][col_]) < 1e-12:
            return None
        rows[col_], rows[pivot] = rows[pivot], rows[col_]
        for r in range(size):
            if r != col_:
                factor = rows[r][col_] / rows[col_][col_]
                rows[r] = [x - factor * y for x, y in zip(rows[r], rows[col_])]
    return [rows[i][size] / rows[i][i] for i in range(size)]

// Host entry points over tests/dual/rules.cuh (built by tests/test_dual_numbers.py).
#include "rules.cuh"

extern "C" {

int gp_n_rules() { return GP_N_RULES; }

// Plain double value of rule k.
double gp_rule_value(int k, double x, double y) { return gp_rule<double>(k, x, y); }

// Value and d/dx, d/dy from Dual<2, S> in double (precision 1) or float (precision 0).
void gp_rule_dual(int k, double x, double y, int precision, double* out) {
    if (precision) {
        const Dual<2, double> r = gp_rule(k, Dual<2, double>::variable(x, 0), Dual<2, double>::variable(y, 1));
        out[0] = r.v, out[1] = r.d[0], out[2] = r.d[1];
    } else {
        const Dual<2> r = gp_rule(k, Dual<2>::variable(static_cast<float>(x), 0),
                                  Dual<2>::variable(static_cast<float>(y), 1));
        out[0] = r.v, out[1] = r.d[0], out[2] = r.d[1];
    }
}
}

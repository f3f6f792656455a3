// A user model header with an error on line 5 (an undeclared name).
template <class T>
GP_HD T broken(const float* x, const T* p) {
    const T d = x[0] - p[0];
    return p[1] * exp(-d * d) + offset;
}

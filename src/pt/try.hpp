// PT_TRY: the early return every Result-returning function writes by hand.
//
//   auto dev = PT_TRY(resolve(...));   // the value, or return the Error
//   PT_TRY(writer.write(...));         // a Status: return its Error, if any
//
// A GNU statement expression (g++ and clang++ both have them): C++23 has no
// standard way to return from inside an expression.
#pragma once

#include <expected>
#include <utility>

#define PT_TRY(expr)                                                  \
  __extension__({                                                     \
    auto&& pt_try_result_ = (expr);                                   \
    if (!pt_try_result_)                                              \
      return std::unexpected(std::move(pt_try_result_).error());      \
    std::move(pt_try_result_).value();                                \
  })

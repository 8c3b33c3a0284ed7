// The technician demo app. Its presenters are the platform-free sources in ../core-ui (also
// compiled and tested on the JVM by ../jvm-tests), its screens are framework activities built in
// code (also compiled and run under Robolectric by ../screen-tests).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "io.jobseal.demo.android"
    compileSdk = 35

    defaultConfig {
        applicationId = "io.jobseal.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        manifestPlaceholders["dispatchUrl"] =
            providers.gradleProperty("jobseal.dispatchUrl").getOrElse("http://10.0.2.2:8787")
        manifestPlaceholders["dispatchKey"] = providers.gradleProperty("jobseal.dispatchKey").getOrElse("")
    }

    sourceSets["main"].java.srcDir("../core-ui/src/main/kotlin")

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        // JNA's AAR and the jobseal AAR both carry native libraries; keep them uncompressed.
        jniLibs.useLegacyPackaging = false
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    implementation(project(":jobseal"))

    // AndroidX Test 1.7 (the release whose monitor 1.8.0 Robolectric 4.16 uses in screen-tests).
    androidTestImplementation("androidx.test:core:1.7.0")
    androidTestImplementation("androidx.test:runner:1.7.0")
    androidTestImplementation("androidx.test:rules:1.7.0")
    androidTestImplementation("androidx.test.ext:junit:1.3.0")
    androidTestImplementation("androidx.test.espresso:espresso-core:3.7.0")
}
